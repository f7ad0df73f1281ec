"""The REST API: searches, trials, cluster state and alerts, scoped by team and token.

``create_app`` builds the FastAPI application over a store. ``neurfly server``
serves it with uvicorn, together with the dashboard. When this process takes
the lease, it also runs the controller.
"""

from neurfly.api.access import Access
from neurfly.api.app import API_PREFIX, create_app
from neurfly.api.context import ApiContext, ApiSettings
from neurfly.api.supervisor import ControllerSupervisor

__all__ = ["API_PREFIX", "Access", "ApiContext", "ApiSettings", "ControllerSupervisor", "create_app"]

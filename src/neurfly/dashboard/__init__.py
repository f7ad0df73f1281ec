"""The web dashboard: static HTML, CSS and JavaScript served by ``neurfly server`` under ``/dashboard/``.

Every file it loads is in ``static/``; it fetches nothing from other hosts.
"""

"""The dashboard: a head-side web process with a JSON API, pages and job submission.

``context.py`` is what every route module gets (the cluster it watches);
``app.py`` assembles the aiohttp application from the route modules, behind
the token check of ``auth.py``.
"""

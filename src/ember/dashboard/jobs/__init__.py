"""Job submission on the dashboard: Ray's Jobs REST API and the jobs it runs.

``routes.py`` serves the API; ``manager.py`` runs the jobs (``driver.py``
starts an entrypoint process, ``store.py`` keeps the records and packages in
the control service, ``records.py`` is the pure record and its checks).
"""

"""The ``ember`` command line (talks to clusters over RPC; starts daemons as processes)."""

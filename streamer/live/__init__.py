"""Live: the engine that runs a session, the record it writes, recommendations as it plays."""

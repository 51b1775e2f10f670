"""Live: the session and its engine, the record it writes, recommendations as it plays."""

"""The flow definition: the schema of the flow files, loading them, hours and numbers."""

"""Live flows: the flows each web worker serves, releases, diversions and their signatures."""

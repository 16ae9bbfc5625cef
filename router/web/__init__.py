"""The web tier: the Flask app factory, the voice and text channels, requests and signatures."""

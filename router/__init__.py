"""helpline-router: the phone and text front door to the UK's national abuse helplines."""

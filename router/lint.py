"""Placeholder: cross-file checks; filled in below."""
def lint_flows(flows, folder, lines):
    return []

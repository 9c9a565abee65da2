"""protege.policies."""

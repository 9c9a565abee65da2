"""protege.launch."""

"""protege.teleop."""

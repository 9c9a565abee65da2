"""protege.sim.robots."""

"""The headless runtime: the control loop, its pilots, scripted collection, the rollout runner and the
worker and Ray pools. Nothing here imports pygame; the windows and devices in :mod:`protege.teleop`
sit on top of it."""

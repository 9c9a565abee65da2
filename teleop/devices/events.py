"""Episode commands a device can issue besides motion."""

from __future__ import annotations

import enum


class Command(enum.Enum):
    """What a person asks the recorder or the intervention window to do; bound to keys or buttons by
    name (``start_stop`` ...)."""

    START_STOP = "start_stop"  # idle -> recording; recording -> stopped (waiting for save or discard)
    SAVE = "save"  # keep the take, draw a new scene
    DISCARD = "discard"  # drop the take, same scene, idle
    RERECORD = "rerecord"  # drop the take, same scene, record again at once
    RESET = "reset"  # drop the take, draw a new scene
    QUIT = "quit"  # drop any unsaved take and close
    PAUSE = "pause"  # freeze the sim or let it run again (live intervention)
    HELP = "help"  # show or hide the key map

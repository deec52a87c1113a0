"""Root pytest configuration: NiceGUI's `user` and `screen` fixtures for the dashboard tests (tests/dashboard).

Registered here because pytest only honours `pytest_plugins` in the root conftest; they add fixtures and a marker
and change nothing for tests that do not use them.
"""

import os

os.environ.setdefault("SE_OFFLINE", "true")  # selenium: use the installed chromedriver, never download one

pytest_plugins = ["nicegui.testing.plugin"]

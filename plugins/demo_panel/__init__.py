"""A minimal example plugin: a dashboard panel showing the learner's org path.

It exists to show the smallest complete plugin (entry point, hookimpls, template)
and to let tests prove that discovery by entry point works on an installed package.
"""

from plugins.demo_panel.plugin import DemoPanelPlugin

plugin = DemoPanelPlugin()

"""Credit bank plugin (学分银行). Placeholder until the plugin skeleton lands on main."""

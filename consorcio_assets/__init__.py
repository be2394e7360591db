from .quick_exit import freeze_at_exit

freeze_at_exit()

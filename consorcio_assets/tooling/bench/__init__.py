"""`consorcio bench`: speed and memory of every migration stage, side by side with the tools a user would
pick instead and with the physical floor, measured on the same data in the same run."""

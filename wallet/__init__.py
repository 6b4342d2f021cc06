"""The wallet party of onceonly."""

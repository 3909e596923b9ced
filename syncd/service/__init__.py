"""The long-running service: daemon, watcher, timers' helpers, sd_notify, metrics, lock, logging."""

"""Developer tools that regenerate shipped files from code (the default config, the README's
screenshots). The kiosk never imports them; each runs as `python -m installation.tools.<name>`."""

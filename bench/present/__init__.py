"""Figures as people read them: terminal text, CSV/Markdown/JSON tables, the fleet report, sweep tables and the
HTML report. Functions here return text or files; only bench.cli prints."""

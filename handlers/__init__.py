"""Entrypoints: Bolt listeners and aiohttp routes. They parse, call one service, and answer."""

"""`crm codec-server`: the payload codec over HTTP for the Temporal Web UI and
the `temporal` CLI (`starter.codec_server`)."""

from __future__ import annotations

from typing import Annotated

import typer

from starter.cli.common import CliError, load_settings, reports_errors, say, warn


@reports_errors
def codec_server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default: CRM_CODEC_PORT, 8234).")
    ] = None,
) -> None:
    """Serve the payload codec (POST /encode, /decode) to the Web UI and the CLI,
    with the keys of CRM_CODEC_KEYS or the key file and the bearer token of
    CRM_CODEC_TOKEN."""
    from starter.codec import CodecKeyError, EncryptionCodec, key_ring
    from starter.codec_server import CodecServer

    settings = load_settings()
    try:
        ring = key_ring(settings)
    except CodecKeyError as exc:
        raise CliError(f"payload codec: {exc}") from exc
    if ring is None:
        raise CliError("payload codec: no keys (set CRM_CODEC_KEYS, or CRM_CODEC_KEY_FILE; "
                       f"the default file {settings.codec_key_path or '-'} does not exist)")
    try:
        server = CodecServer(EncryptionCodec(ring), token=settings.codec_token,
                             origins=settings.codec_cors_origins, host=host,
                             port=settings.codec_port if port is None else port)
    except OSError as exc:
        raise CliError(f"codec server cannot listen on {host}:{port}: {exc}") from exc
    say(f"codec server on {server.url} (keys: {', '.join(ring.keys)}; encrypting with "
        f"{ring.current}); UI origins: {', '.join(settings.codec_cors_origins) or '-'}")
    if not settings.codec_token:
        warn("no CRM_CODEC_TOKEN: anyone who can reach this port can decrypt")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
    say("stopped")

# Container image for Big Red Button.
#
#   docker build -t redbutton .
#   docker run --rm -p 127.0.0.1:8080:8080 -v redbutton:/var/lib/redbutton redbutton
#
# See docker-compose.yml for a complete setup with PostgreSQL and a mail catcher.

# ---- build stage ----------------------------------------------------------
# The Rust image already has what the native dependencies need: SQLite, libpq
# and OpenSSL are compiled from source by their crates with the C compiler,
# make and perl that come with it.
FROM rust:1-bookworm AS builder
WORKDIR /app
COPY . .
RUN cargo build --release --locked

# ---- runtime stage --------------------------------------------------------
FROM debian:bookworm-slim

# CA certificates for outgoing TLS (SMTP, webhooks); everything else is
# linked into the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 redbutton \
    && useradd --system --uid 10001 --gid redbutton --home-dir /var/lib/redbutton \
        --no-create-home --shell /usr/sbin/nologin redbutton \
    && install -d -o redbutton -g redbutton -m 0750 /var/lib/redbutton

# Templates and static files are compiled into the binary: nothing else to copy.
COPY --from=builder /app/target/release/redbutton /usr/local/bin/redbutton

# Working directory (and the place for a SQLite database) owned by the
# unprivileged user; numeric so orchestrators can check it is not root.
USER 10001:10001
WORKDIR /var/lib/redbutton

ENV REDBUTTON_LISTEN=0.0.0.0:8080
EXPOSE 8080

ENTRYPOINT ["redbutton"]
CMD ["serve"]

# A sloth-runner agent image.
#
#   docker build -t sloth-runner .
#   docker run -d -e SLOTH_AGENT_TOKEN="$(openssl rand -hex 32)" -p 50051:50051 sloth-runner
#
# The build needs no protoc: build.rs compiles the proto with protox (pure Rust).

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sloth-runner \
 && install -m 0755 target/release/sloth-runner /usr/local/bin/sloth-runner

FROM debian:bookworm-slim
# ca-certificates: the system roots for agents' TLS and `net`'s https. Tasks are shell commands:
# add the tools your tasks run (git, make, ...) in an image built FROM this one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/sloth-runner --create-home sloth
COPY --from=build /usr/local/bin/sloth-runner /usr/local/bin/sloth-runner
USER 10001:10001
ENV HOME=/var/lib/sloth-runner
WORKDIR /var/lib/sloth-runner
# Task trees and the content cache; a volume, so a container's layer does not grow with them.
VOLUME ["/var/lib/sloth-runner"]
# gRPC (masters) and Prometheus metrics (/metrics).
EXPOSE 50051 9464
# The token comes from SLOTH_AGENT_TOKEN in the environment; without one the agent refuses to
# listen beyond loopback, so the container exits with an error saying so.
ENTRYPOINT ["sloth-runner"]
CMD ["agent", "--bind", "0.0.0.0", "--port", "50051", "--work-dir", "/var/lib/sloth-runner", "--metrics-addr", "0.0.0.0:9464"]
# The standard gRPC health check of the agent's service (no token needed).
HEALTHCHECK --interval=30s --timeout=6s --start-period=10s --retries=3 \
  CMD ["sloth-runner", "health", "127.0.0.1:50051", "--timeout", "5s"]

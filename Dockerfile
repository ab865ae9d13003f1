# syntax=docker/dockerfile:1
#
# Portcullis container image: one static (musl) binary on an empty base
# image, running as an unprivileged numeric user, state in the /data volume.
#
#   docker build -t portcullis .
#   docker run -d -p 5001:5001 -v portcullis-data:/data \
#     -e PORTCULLIS_PUBLIC_URL=http://localhost:5001 portcullis
#
# CI has no Docker engine: scripts/static-check builds the same target with
# the same settings and runs the binary the way this image does.

FROM rust:1-bookworm AS build
# ring and aws-lc compile C code, which for a musl target needs musl-gcc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The binary is copied out of the cache mount, which the next stage cannot see.
# The empty /out/data becomes /data, owned by the runtime user: a named volume
# mounted there starts with that owner.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && cargo build --release --locked --target "$target" \
 && install -D -m 0755 "target/$target/release/portcullis" /out/portcullis \
 && mkdir -m 0700 /out/data

FROM scratch
# VERSION must equal Cargo.toml's version (scripts/static-check compares them);
# SOURCE and REVISION are the repository URL and commit, given at build time:
#   docker build --build-arg SOURCE=https://… --build-arg REVISION=$(git rev-parse HEAD) .
ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=""
LABEL org.opencontainers.image.title="Portcullis" \
      org.opencontainers.image.description="Token authentication server for private container registries" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/portcullis /usr/local/bin/portcullis
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PATH=/usr/local/bin \
    PORTCULLIS_LISTEN=0.0.0.0:5001 \
    PORTCULLIS_DATA_DIR=/data
VOLUME /data
EXPOSE 5001
# No shell or curl in this image: the binary checks itself (GET /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/portcullis", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve"]

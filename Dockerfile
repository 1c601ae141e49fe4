# The turbolane image that compose.yaml builds. libvips comes from Debian,
# like on the development machines (DESIGN.md: govips v2.16 on libvips 8.14).
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libvips-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN go build -ldflags "-X main.version=${VERSION}" -o /out/turbolane ./cmd/turbolane

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libvips42 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data turbolane && mkdir -p /data && chown turbolane /data
COPY --from=build /out/turbolane /usr/local/bin/turbolane
USER turbolane
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["turbolane"]
CMD ["serve", "--addr=0.0.0.0:8080", "--data-dir=/data", "--nats-listen="]

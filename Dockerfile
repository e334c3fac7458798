# OneStory's container image: built on Debian 12 with the same scripts a host uses
# (tools/install-deps.sh, tools/build.sh), then a slim runtime with the binaries, the runtime
# libraries they link and redis-server (for the embedded default), running as a non-root user
# (uid 65532, as the Kubernetes manifests' securityContext).
# tests/deploy/dockerfile_test.py checks these steps against tools/ and the binaries' libraries.
#
#   docker build -t onestory .
#   docker run -p 50051:50051 -v onestory-data:/var/lib/onestory onestory    # embedded default
#   docker run -e ONESTORY_REDIS=redis:6379 ... onestory                       # your Redis

FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN bash tools/install-deps.sh && bash tools/build.sh

FROM debian:12-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libgrpc++1.51 libprotobuf32 libhiredis0.14 libabsl20220623 libre2-9 libssl3 \
       libjemalloc2 libcpp-httplib0.11 redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 65532 --home-dir /var/lib/onestory --shell /usr/sbin/nologin onestory \
    && install -d -o onestory -g onestory -m 0700 /var/lib/onestory
COPY --from=build /src/build/services/onestory-server /src/build/services/onestory-identity \
     /src/build/services/onestory-timeline /src/build/services/onestory-context \
     /src/build/services/onestory-engagement /usr/local/bin/
USER 65532:65532
WORKDIR /var/lib/onestory
VOLUME /var/lib/onestory
ENV ONESTORY_LISTEN=0.0.0.0:50051 \
    ONESTORY_METRICS_LISTEN=0.0.0.0:9464 \
    ONESTORY_DATA_DIR=/var/lib/onestory/data
EXPOSE 50051 9464
# /healthz on the metrics port; bash's /dev/tcp, as the slim image has no HTTP client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/onestory-server"]

# sagaflow worker image: built from Debian's packages, like the local setup.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config libuv1-dev libsimdjson-dev librdkafka-dev \
      libhiredis-dev librabbitmq-dev libssl-dev libcli11-dev libfmt-dev libmicrohttpd-dev libcurl4-openssl-dev catch2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAGAFLOW_TESTS=OFF -DSAGAFLOW_BENCH=OFF \
    && cmake --build /build --target sagaflow

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libuv1 libsimdjson14 librdkafka1 libhiredis0.14 librabbitmq4 libssl3 libfmt9 libmicrohttpd12 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --no-create-home sagaflow
COPY --from=build /build/app/sagaflow /usr/local/bin/sagaflow
USER sagaflow
ENTRYPOINT ["sagaflow"]
CMD ["worker"]

# syntax=docker/dockerfile:1
# cellgate container image: build with the full toolchain, run on a distroless Node.js base as a non-root
# user. Layout: code in /app, config in /etc/cellgate (cellgate.yaml, devices/, keys/), data in /var/lib/cellgate.
#
#   docker build -t cellgate .
#   docker run --rm -p 5683:5683/udp -p 5684:5684/udp -p 8080:8080 -v "$PWD/conf:/etc/cellgate:ro" cellgate
#   docker run --rm cellgate simulate --host gateway.example --devices 10 --count 5

ARG NODE_MAJOR=24

FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so source changes do not invalidate the install layer. The lock file refers to a local
# stand-in package, which must be present for `npm ci`.
COPY package.json package-lock.json ./
COPY test/support/no-native-aead ./test/support/no-native-aead
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY src ./src
COPY codecs ./codecs
# Only what ships (src, codecs): the benchmarks and tests stay out of the image and its build.
RUN npx tsc -p tsconfig.image.json \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && mkdir -p /out/app /out/data/files \
  && cp -r package.json node_modules /out/app/ \
  && mkdir -p /out/app/dist \
  && cp -r dist/src dist/codecs /out/app/dist/

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
ENV NODE_ENV=production \
  CELLGATE_CONFIG=/etc/cellgate/cellgate.yaml
WORKDIR /app
COPY --from=build /out/app /app
COPY docker/cellgate.yaml /etc/cellgate/cellgate.yaml
COPY docker/devices.yaml /etc/cellgate/devices/devices.yaml
COPY --from=build --chown=65532:65532 /out/data /var/lib/cellgate
USER 65532:65532
EXPOSE 5683/udp 5684/udp 8080/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/nodejs/bin/node", "/app/dist/src/cli.js", "healthcheck"]
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/cli.js"]
CMD ["start"]

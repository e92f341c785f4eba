# syntax=docker/dockerfile:1
# kie-batch: multi-stage build; the runtime image has production dependencies only and runs as
# a non-root user with `kie-batch` as its entrypoint.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not here yet (they come next, so that
# this layer is reused until the lockfile changes); the build runs below.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
# scripts/build.mjs: tsc, then copy-lua.mjs puts the Redis scripts (src/**/*.lua) beside the
# JavaScript in dist/.
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:22-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no `prepare` build here (no TypeScript, no sources); dist/ comes from "build".
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM node:22-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# No src/ in this image: bin/kie-batch.js runs dist/ as built, with no freshness check.
COPY bin ./bin
COPY examples ./examples
USER node
# The webhook receiver and /healthz (worker --listen 8080).
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/kie-batch.js"]
CMD ["--help"]

# Dependencies stage: everything from the lock file (development tools included).
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci

# Build stage: compile, then drop the development dependencies.
FROM deps AS build
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Development stage (docker-compose.dev.yml): `npm run start:dev` (nest start --watch) recompiles and
# restarts on every change in src/, which Compose mounts from the host over the copy made here.
FROM deps AS dev
ENV NODE_ENV=development PORT=8080 HOST=::
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
EXPOSE 8080
CMD ["npm", "run", "start:dev"]

# Runtime stage (the default): production dependencies and the compiled app, as the unprivileged
# `node` user. Listens on every address (HOST=::, IPv4 too; IPv4 only where IPv6 is off).
# SIGTERM (docker stop) makes readiness 503, keeps serving SHUTDOWN_DELAY s (default 0), then drains
# requests in flight and exits 0 (SHUTDOWN_GRACE_PERIOD, 10 s).
FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=8080 HOST=::
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# V8 heap settings of `npm run start:prod` (README "Performance": peak RSS about 150 MiB under load).
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=20", "dist/main.js"]

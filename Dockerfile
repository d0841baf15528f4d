# Bayou in a container image: a static binary on a distroless base, run as
# a non-root user, listening on :8000.
#
#   docker build -t bayou .
#   docker run --rm -p 8000:8000 bayou
#   docker run --rm -p 8000:8000 -e BAYOU_AUTH=token -e BAYOU_TOKEN_SECRET="$SECRET" bayou
#
# Every flag is also a BAYOU_* environment variable (see bayou --help).
# Arguments after the image name replace CMD (--addr :8000): repeat
# --addr :8000 among them, or bayou listens on its default 127.0.0.1:8000,
# which nothing outside the container reaches (BAYOU_ADDR does not change the
# default CMD's --addr: the command line wins over the environment).
#
# make test runs this file's build stage without an image builder
# (scripts/docker-steps.sh): it runs the RUN lines below in a copy of the
# build context and checks what the final stage is given, so keep to the
# instructions that script knows (FROM, ARG, ENV, WORKDIR, COPY, RUN, and
# in the final stage USER, EXPOSE, ENTRYPOINT, CMD).

# The Go of go.mod's go line (scripts/docker-steps.sh checks they agree).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a change of source alone reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN ./scripts/build-static.sh bin/bayou

# distroless/static: CA certificates, tzdata, /etc/passwd with the user
# nonroot (65532), and no shell or package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/bayou /bayou
USER 65532:65532
EXPOSE 8000
# No HEALTHCHECK: the image has no shell and no curl to run one with (a
# HEALTHCHECK CMD needs a program in the image). Let the orchestrator probe
# the port, e.g. a Kubernetes tcpSocket or httpGet probe.
ENTRYPOINT ["/bayou"]
CMD ["--addr", ":8000"]

# Builds the showcase and the avtomatika CLI into one small image.
#   docker build -t avtomatika-showcase .
#   docker run --rm -p 8080:8080 avtomatika-showcase orchestrator
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/showcase ./examples/showcase \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/avtomatika ./cmd/avtomatika

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/showcase /out/avtomatika /usr/local/bin/
USER nonroot:nonroot
# Relative defaults (BLOB_DIR=avtomatika_blobs, the SQLite history
# avtomatika_history.db) land in the working directory, which must be
# writable by nonroot: its home, not /.
WORKDIR /home/nonroot
EXPOSE 8080 8000 8083
ENTRYPOINT ["/usr/local/bin/showcase"]
CMD ["orchestrator"]

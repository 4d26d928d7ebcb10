# Sourced by the image scripts (test.sh, fresh.sh): podman set up for these machines (see ../shared/IMAGES.md), in
# a scratch dir of its own, with a local Debian bookworm base where no registry can be reached.
scratch=${CATWALK_IMAGE_SCRATCH:-/var/tmp/catwalk-images}
mkdir -p "$scratch"
export CONTAINERS_CONF="$PWD/images/containers.conf"
export CONTAINERS_STORAGE_CONF="$scratch/storage.conf"
cat > "$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$scratch/graph"
runroot = "$scratch/run"
CONF

need=()
for tool in podman runc debootstrap curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! podman image exists docker.io/library/debian:bookworm-slim; then
    rm -rf "$scratch/rootfs"
    debootstrap --variant=minbase bookworm "$scratch/rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$scratch/rootfs" -c . | podman import - docker.io/library/debian:bookworm-slim >/dev/null
    rm -rf "$scratch/rootfs"
fi

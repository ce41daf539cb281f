// `slipway-slirp4netns`: slipway behind slirp4netns's command line and API
// (see slirp4netns_main.h). Podman's network_cmd_path and RootlessKit's
// --slirp4netns-binary point here.
#include "netstack/compat/slirp4netns_main.h"
#include "netstack/sys/heap.h"

int main(int argc, char** argv) {
  slipway::sys::keep_freed_heap_memory();
  return slipway::compat::slirp4netns_main(argc, argv, "slipway-slirp4netns");
}

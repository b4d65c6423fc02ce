# Additions for Nomad clients with NVIDIA GPUs, loaded after client.hcl.
#
# Installed as /etc/nomad.d/20-client-gpu.hcl next to 10-client.hcl (plugin
# blocks are not merged across files, so this file adds a plugin and never
# repeats "docker"). The NVIDIA device plugin is a separate binary,
# nomad-device-nvidia, which the user data places in plugin_dir. The host
# needs the NVIDIA driver and the NVIDIA Container Toolkit (the Docker
# "nvidia" runtime, which the docker driver allows by default).
#
# A task asks for a GPU with Resources.Devices = [{Name = "nvidia/gpu",
# Count = 1}]; the plugin sets NVIDIA_VISIBLE_DEVICES for it.

plugin_dir = "/opt/nomad/plugins"

client {
  node_class = "gpu"
}

plugin "nomad-device-nvidia" {
  config {
    enabled            = true
    fingerprint_period = "1m"
  }
}

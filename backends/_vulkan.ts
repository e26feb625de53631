/** Internal: whether a Vulkan loader and driver are installed (Linux). */

// Where the Vulkan loader looks for drivers, and where Debian, Fedora and
// others put the loader itself.
const VULKAN_DRIVER_DIRS = [
  "/usr/share/vulkan/icd.d",
  "/etc/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
];
const VULKAN_LOADERS = [
  "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
  "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
  "/usr/lib64/libvulkan.so.1",
  "/usr/lib/libvulkan.so.1",
];

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function hasDriver(dir: string): boolean {
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.name.endsWith(".json")) return true;
    }
  } catch {
    // absent or unreadable: no driver there
  }
  return false;
}

/**
 * True when the Vulkan loader (`libvulkan.so.1`) and at least one driver
 * manifest (or `VK_ICD_FILENAMES`/`VK_DRIVER_FILES`) are present, i.e. when
 * WebGPU restricted to Vulkan can still find an adapter. Needs env and read
 * permissions (throws without them).
 */
export function vulkanInstalled(): boolean {
  const driver = Deno.env.get("VK_ICD_FILENAMES") !== undefined ||
    Deno.env.get("VK_DRIVER_FILES") !== undefined ||
    VULKAN_DRIVER_DIRS.some(hasDriver);
  return driver && VULKAN_LOADERS.some(exists);
}

// Lists the images of a namespace with their layer counts: deno run -A examples/list_images.ts

import { connect, readAllContent } from "../api.ts";

await using client = await connect(); // WFE_CONTAINERD_ADDR, CONTAINERD_ADDRESS or the system socket
console.log(`containerd ${client.serverVersion.version}, namespace ${client.namespace}`);

const { images } = await client.images.list({});
for (const image of images) {
  const manifest = JSON.parse(
    new TextDecoder().decode(await readAllContent(client, image.target!.digest)),
  );
  console.log(`${image.name}  ${manifest.layers.length} layer(s)  ${image.target!.digest}`);
}

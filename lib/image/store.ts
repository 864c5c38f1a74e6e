/**
 * The one path every image takes into containerd, pulled or imported: blobs
 * from a {@linkcode BlobProvider} written into the content store under one
 * lease, with the garbage-collection labels containerd's own pull writes,
 * layers fetched in parallel and unpacked in order as they arrive, then the
 * image record created or updated. Blobs already in the store are not
 * fetched again; an interrupted layer resumes from its ingest.
 *
 * @module
 */

import { retry } from "../_util/async.ts";
import { errorMessage } from "../_util/errors.ts";
import { withLease } from "../content/lease.ts";
import { readAllContent } from "../content/read.ts";
import { writeContent } from "../content/write.ts";
import type { ContainerdClient } from "../grpc/connection.ts";
import { ContainerdError, GrpcCode, isNotFound } from "../grpc/errors.ts";
import { DISTRIBUTION_SOURCE_PREFIX, LABELS } from "../labels.ts";
import { chainIds } from "../oci/chain_id.ts";
import { mediaTypeKind } from "../oci/media_types.ts";
import type { OciDescriptor, OciPlatform } from "../oci/types.ts";
import { defaultSnapshotter } from "../runtime/task.ts";
import { type ResolvedManifest, resolveManifest } from "./manifest.ts";
import type { BlobProvider } from "./provider.ts";
import { labelUnpacked, unpackLayer } from "./unpack.ts";
import { dropStaleLeases, saveImageRecord } from "./_record.ts";
import {
  blobExists,
  childLabels,
  documentChildren,
  ensureLabels,
  holdResource,
  ingestRef,
} from "./_labels.ts";

/** Where a blob is on its way into containerd. */
export type PullPhase =
  | "resolving"
  | "waiting"
  | "downloading"
  | "verifying"
  | "unpacking"
  | "done"
  | "exists";

/** One progress report of a pull or import, per blob. */
export interface PullProgress {
  /** The image being stored. */
  image: string;
  /** What the blob is. */
  kind: "index" | "manifest" | "config" | "layer";
  /** The blob's digest. */
  digest: string;
  /** The phase it entered or is in. */
  phase: PullPhase;
  /** Bytes written so far (all of it once done). */
  done: number;
  /** The blob's size. */
  total: number;
}

/** Options of {@linkcode storeImage}. */
export interface StoreImageOptions {
  /** The image record's name, e.g. `localhost:5000/team/app:1`. */
  name: string;
  /**
   * The platform to store, `os/arch[/variant]`.
   * @default {hostPlatform()}
   */
  platform?: string | OciPlatform;
  /**
   * The snapshotter to unpack into.
   * @default {the namespace's default snapshotter, else "overlayfs"}
   */
  snapshotter?: string;
  /**
   * Unpack the layers into the snapshotter (needed to run the image).
   * @default {true}
   */
  unpack?: boolean;
  /** The registry host and repository, for the `containerd.io/distribution.source.*` label. */
  source?: { host: string; repository: string };
  /**
   * Layers fetched at once.
   * @default {3}
   */
  concurrency?: number;
  /** Progress, per blob. */
  onProgress?: (event: PullProgress) => void;
  /** Cancels the work; what was written stays as resumable ingests under an expiring lease. */
  signal?: AbortSignal;
}

/** What {@linkcode storeImage} stored. */
export interface StoredImage extends ResolvedManifest {
  /** The image record's name. */
  name: string;
  /** The snapshotter the layers are unpacked in (`""` when `unpack` was false). */
  snapshotter: string;
  /** Blobs written to the content store. */
  fetched: number;
  /** Blobs that were there already. */
  existed: number;
  /** Bytes written to the content store. */
  bytes: number;
}

/** A document read while resolving: its bytes, and whether it still has to be written. */
interface Document {
  desc: OciDescriptor;
  bytes?: Uint8Array;
  fetched: boolean;
}

/** True for errors that say the bytes sent were wrong (so the ingest holds bad data). */
function isBadData(err: unknown): boolean {
  if (err instanceof ContainerdError) {
    return err.code === GrpcCode.DATA_LOSS ||
      (err.code === GrpcCode.FAILED_PRECONDITION && /digest|size/i.test(err.message));
  }
  const code = (err as { code?: unknown })?.code;
  return code === "DIGEST_INVALID" || code === "SIZE_INVALID";
}

/**
 * Stores an image from any blob provider: resolves the target for the
 * platform (reading documents from the content store when they are there,
 * else from the provider), writes the index, manifest and config with
 * containerd's child labels (`containerd.io/gc.ref.content.m.<i>`, `.config`,
 * `.l.<i>`) and the distribution source, fetches the layers (`concurrency`
 * at a time, ingest refs `layer-<digest>`, resumed when an earlier attempt
 * stopped) and unpacks each in order as soon as it and the ones below are
 * in, then creates or updates the image record. Everything is written under
 * one expiring lease, deleted at the end: the image record then keeps it all
 * alive through the labels. When storing fails (or is aborted) the lease is
 * kept until it expires, so the ingests stay resumable; the next successful
 * store of the same name deletes such leases.
 *
 * @param client A connected client (its namespace receives the image).
 * @param provider Where the blobs come from: a registry or an archive.
 * @param target The image's target: an index or a manifest.
 * @param options Name, platform, snapshotter, progress, signal.
 * @returns The resolved image, the snapshotter and what was written.
 * @throws {ContainerdError} From the content store, snapshotter or differ
 *   (DATA_LOSS when a layer does not match its diff ID).
 */
export async function storeImage(
  client: ContainerdClient,
  provider: BlobProvider,
  target: OciDescriptor,
  options: StoreImageOptions,
): Promise<StoredImage> {
  const { name, source, onProgress, signal, unpack = true, concurrency = 3 } = options;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`Cannot use concurrency ${concurrency}: expected an integer >= 1`);
  }
  const snapshotter = unpack ? options.snapshotter ?? await defaultSnapshotter(client) : "";
  const report = (
    kind: PullProgress["kind"],
    desc: OciDescriptor,
    phase: PullPhase,
    done = phase === "done" || phase === "exists" ? desc.size : 0,
  ) => onProgress?.({ image: name, kind, digest: desc.digest, phase, done, total: desc.size });
  const sourceLabels = (): Record<string, string> =>
    source ? { [`${DISTRIBUTION_SOURCE_PREFIX}${source.host}`]: source.repository } : {};

  // Whether anything was written: a store that fails before keeps no lease.
  let writing = false;
  const work = async (leased: ContainerdClient, leaseId: string): Promise<StoredImage> => {
    // Documents: from the store when present, else from the provider.
    const seen = new Map<string, Document>();
    const recorder: BlobProvider = {
      description: provider.description,
      async readBlob(desc, opts) {
        try {
          await holdResource(leased, leaseId, desc.digest, "content", opts.signal);
          const bytes = await readAllContent(leased, desc.digest, { ...opts, verify: true });
          seen.set(desc.digest, { desc, bytes, fetched: false });
          return bytes;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        const kind = mediaTypeKind(desc.mediaType);
        if (kind === "index" || kind === "manifest") report(kind, desc, "resolving");
        const bytes = await provider.readBlob(desc, opts);
        seen.set(desc.digest, { desc, bytes, fetched: true });
        return bytes;
      },
      openBlob: (desc, opts) => provider.openBlob(desc, opts),
    };
    const resolved = await resolveManifest(recorder, target, {
      platform: options.platform,
      name,
      signal,
    });
    const configDesc = resolved.manifest.config;
    let config = seen.get(configDesc.digest);
    if (!config) { // the parsed config came from the in-memory cache
      config = await blobExists(leased, configDesc.digest, signal, leaseId)
        ? { desc: configDesc, fetched: false }
        : {
          desc: configDesc,
          bytes: await provider.readBlob(configDesc, { maxBytes: configDesc.size, signal }),
          fetched: true,
        };
    }
    // Children before parents: config, manifest, then the indexes innermost first.
    const docs = [
      config,
      seen.get(resolved.manifestDigest)!,
      ...[...seen.values()].filter((d) => mediaTypeKind(d.desc.mediaType) === "index").reverse(),
    ];
    let fetched = 0;
    let existed = 0;
    let bytes = 0;
    writing = true;
    for (const { desc, bytes: data, fetched: isNew } of docs) {
      const kind = mediaTypeKind(desc.mediaType) as PullProgress["kind"];
      const labels = data ? childLabels(documentChildren(desc, data)) : {};
      let wrote = false;
      if (isNew && data) {
        const res = await writeContent(leased, data, {
          ref: ingestRef(desc),
          expected: desc.digest,
          labels: { ...labels, ...sourceLabels() },
          signal,
        });
        wrote = !res.existed;
      }
      if (wrote) {
        fetched++;
        bytes += desc.size;
      } else {
        existed++;
        await ensureLabels(leased, desc.digest, labels, source, signal);
      }
      report(kind, desc, wrote ? "done" : "exists");
    }

    // Layers: fetched `concurrency` at a time, the tars unpacked in order as they arrive
    // (other layers, e.g. Wasm modules, are only stored).
    const layers = [...resolved.layers, ...resolved.extraLayers];
    const tars = resolved.layers.length;
    const chain = unpack && tars > 0 ? await chainIds(resolved.diffIds) : [];
    const stop = new AbortController();
    const inner = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    let running = 0;
    const queue: (() => void)[] = [];
    const slot = async (): Promise<void> => {
      if (running < concurrency) {
        running++;
        return;
      }
      await new Promise<void>((resolve) => queue.push(resolve));
    };
    const release = () => {
      const next = queue.shift();
      if (next) next();
      else running--;
    };
    const fetchLayer = async (layer: OciDescriptor, present: boolean): Promise<void> => {
      if (present) {
        existed++;
        if (source) await ensureLabels(leased, layer.digest, {}, source, inner);
        report("layer", layer, "exists");
        return;
      }
      report("layer", layer, "waiting");
      await slot();
      try {
        inner.throwIfAborted();
        report("layer", layer, "downloading");
        const write = () =>
          // containerd verifies the digest at COMMIT: no second hash here.
          writeContent(leased, (offset) =>
            provider.openBlob(layer, { signal: inner, offset, verify: false }), {
            ref: ingestRef(layer),
            expected: layer.digest,
            total: layer.size,
            labels: sourceLabels(),
            verify: false,
            signal: inner,
            onProgress: (done) =>
              report("layer", layer, done === layer.size ? "verifying" : "downloading", done),
          });
        const res = await retry(async () => {
          try {
            return await write();
          } catch (err) {
            // Bad bytes in the ingest (a corrupt source, or a resumed ingest that
            // does not add up): drop the ingest so nothing wrong is kept or resumed.
            if (isBadData(err)) {
              await leased.content.abort({ ref: ingestRef(layer) }).catch(() => {});
              throw new ContainerdError({
                code: GrpcCode.DATA_LOSS,
                method: "storeImage",
                details: `layer ${layer.digest} from ${provider.description} does not match ` +
                  `its digest: ${err instanceof ContainerdError ? err.details : errorMessage(err)}`,
                cause: err,
              });
            }
            throw err;
          }
        }, {
          attempts: 5,
          minDelayMs: 100,
          signal: inner,
          // Another writer holds the ingest (e.g. a concurrent pull of the same layer).
          retryable: (err) =>
            err instanceof ContainerdError && err.code === GrpcCode.UNAVAILABLE &&
            /locked/.test(err.message),
        });
        if (res.existed) existed++;
        else {
          fetched++;
          bytes += res.size - res.resumedFrom;
        }
        report(
          "layer",
          layer,
          unpack && !resolved.extraLayers.includes(layer) ? "verifying" : "done",
          layer.size,
        );
      } finally {
        release();
      }
    };
    // Presence first, so that the download slots go to the layers in order
    // (the bottom layer is unpacked first).
    const present = await Promise.all(
      layers.map((layer) => blobExists(leased, layer.digest, inner, leaseId)),
    );
    const downloads = layers.map((layer, i) => fetchLayer(layer, present[i]));
    // Failures are awaited in order below; until then they are not "unhandled".
    for (const download of downloads) download.catch(() => {});
    try {
      for (let i = 0; i < layers.length; i++) {
        await downloads[i];
        if (!unpack || i >= tars) continue;
        report("layer", layers[i], "unpacking", layers[i].size);
        await unpackLayer(leased, {
          layer: layers[i],
          diffId: resolved.diffIds[i],
          parent: i === 0 ? "" : chain[i - 1],
          chainId: chain[i],
        }, { snapshotter, signal, leaseId });
        report("layer", layers[i], "done");
      }
      if (unpack) {
        await labelUnpacked(leased, configDesc.digest, snapshotter, resolved.chainId, signal);
      }
    } catch (err) {
      stop.abort(err);
      await Promise.allSettled(downloads);
      throw err;
    }
    await Promise.all(downloads);

    await saveImageRecord(leased, name, target, signal);
    await dropStaleLeases(client, name, leaseId);
    return { name, ...resolved, snapshotter, fetched, existed, bytes };
  };
  return await withLease(client, async (leased, leaseId) => {
    try {
      return await work(leased, leaseId);
    } catch (err) {
      if (!writing) await client.leases.delete({ id: leaseId }).catch(() => {});
      throw err;
    }
  }, { labels: { [LABELS.pull]: name }, keepOnError: true });
}

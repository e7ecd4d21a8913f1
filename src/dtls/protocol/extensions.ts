/**
 * Hello extensions the server understands: extended_master_secret (RFC 7627), renegotiation_info
 * (RFC 5746), record_size_limit (RFC 8449), connection_id (RFC 9146), the ECC ones (supported_groups,
 * ec_point_formats: RFC 8422; signature_algorithms: RFC 5246) and the certificate types of RFC 7250. Every
 * other extension is ignored.
 */
import { Cursor } from './cursor.js';
import { ExtensionType } from './constants.js';

export interface ClientExtensions {
  readonly extendedMasterSecret: boolean;
  /** renegotiated_connection of renegotiation_info, or undefined when the extension is absent. */
  readonly renegotiationInfo: Buffer | undefined;
  /** The client's record_size_limit, or undefined. */
  readonly recordSizeLimit: number | undefined;
  /** The CID the client wants to receive (may be empty), or undefined when it does not offer CIDs. */
  readonly connectionId: Buffer | undefined;
  /** Named groups offered (supported_groups), or undefined when absent. */
  readonly supportedGroups: readonly number[] | undefined;
  /** ec_point_formats offered, or undefined when absent. */
  readonly pointFormats: Buffer | undefined;
  /** SignatureAndHashAlgorithm values offered (signature_algorithms), or undefined when absent. */
  readonly signatureAlgorithms: readonly number[] | undefined;
  /** client_certificate_type list (RFC 7250), or undefined when absent. */
  readonly clientCertificateTypes: Buffer | undefined;
  /** server_certificate_type list (RFC 7250), or undefined when absent. */
  readonly serverCertificateTypes: Buffer | undefined;
}

/** A list of u16 values in a vector with a two-byte length; undefined when malformed. */
function u16List(d: Cursor): number[] | undefined {
  const bytes = d.vec16();
  if (!d.ok || bytes.length % 2 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) out.push(bytes.readUInt16BE(i));
  return out;
}

/**
 * Parses a ClientHello extension block (without its two-byte length). Returns undefined when the block is
 * malformed, an extension appears twice, or a known extension's body is invalid.
 */
export function parseClientExtensions(block: Buffer): ClientExtensions | undefined {
  const c = new Cursor(block, 0, block.length);
  const seen = new Set<number>();
  let extendedMasterSecret = false;
  let renegotiationInfo: Buffer | undefined;
  let recordSizeLimit: number | undefined;
  let connectionId: Buffer | undefined;
  let supportedGroups: number[] | undefined;
  let pointFormats: Buffer | undefined;
  let signatureAlgorithms: number[] | undefined;
  let clientCertificateTypes: Buffer | undefined;
  let serverCertificateTypes: Buffer | undefined;
  while (c.ok && c.remaining > 0) {
    const type = c.u16();
    const data = c.vec16();
    if (!c.ok || seen.has(type)) return undefined;
    seen.add(type);
    const d = new Cursor(data, 0, data.length);
    switch (type) {
      case ExtensionType.extendedMasterSecret:
        if (data.length !== 0) return undefined;
        extendedMasterSecret = true;
        break;
      case ExtensionType.renegotiationInfo:
        renegotiationInfo = d.vec8();
        break;
      case ExtensionType.recordSizeLimit:
        recordSizeLimit = d.u16();
        if (recordSizeLimit < 64) return undefined;
        break;
      case ExtensionType.connectionId:
        connectionId = d.vec8();
        break;
      case ExtensionType.supportedGroups:
        supportedGroups = u16List(d);
        if (!supportedGroups) return undefined;
        break;
      case ExtensionType.ecPointFormats:
        pointFormats = d.vec8();
        break;
      case ExtensionType.signatureAlgorithms:
        signatureAlgorithms = u16List(d);
        if (!signatureAlgorithms) return undefined;
        break;
      case ExtensionType.clientCertificateType:
        clientCertificateTypes = d.vec8();
        break;
      case ExtensionType.serverCertificateType:
        serverCertificateTypes = d.vec8();
        break;
      default:
        continue;
    }
    if (!d.ok || d.remaining !== 0) return undefined;
  }
  if (!c.ok) return undefined;
  return {
    extendedMasterSecret,
    renegotiationInfo,
    recordSizeLimit,
    connectionId,
    supportedGroups,
    pointFormats,
    signatureAlgorithms,
    clientCertificateTypes,
    serverCertificateTypes,
  };
}

export interface ServerExtensions {
  readonly renegotiationInfo: boolean;
  readonly extendedMasterSecret: boolean;
  readonly recordSizeLimit: number | undefined;
  /** The server's CID (latin1 string), or undefined to leave connection_id out. */
  readonly connectionId: string | undefined;
  /** Answer ec_point_formats with `uncompressed` (an ECC suite was chosen and the client sent it). */
  readonly ecPointFormats?: boolean;
  /** The negotiated client_certificate_type, when the client sent the extension. */
  readonly clientCertificateType?: number;
  /** The negotiated server_certificate_type, when the client sent the extension. */
  readonly serverCertificateType?: number;
}

/** Encodes the ServerHello extension block (without its two-byte length). */
export function encodeServerExtensions(e: ServerExtensions): Buffer {
  const size =
    (e.renegotiationInfo ? 5 : 0) +
    (e.extendedMasterSecret ? 4 : 0) +
    (e.recordSizeLimit !== undefined ? 6 : 0) +
    (e.connectionId !== undefined ? 5 + e.connectionId.length : 0) +
    (e.ecPointFormats ? 6 : 0) +
    (e.clientCertificateType !== undefined ? 5 : 0) +
    (e.serverCertificateType !== undefined ? 5 : 0);
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  if (e.renegotiationInfo) {
    p = out.writeUInt16BE(ExtensionType.renegotiationInfo, p);
    p = out.writeUInt16BE(1, p);
    out[p++] = 0;
  }
  if (e.extendedMasterSecret) {
    p = out.writeUInt16BE(ExtensionType.extendedMasterSecret, p);
    p = out.writeUInt16BE(0, p);
  }
  if (e.recordSizeLimit !== undefined) {
    p = out.writeUInt16BE(ExtensionType.recordSizeLimit, p);
    p = out.writeUInt16BE(2, p);
    p = out.writeUInt16BE(e.recordSizeLimit, p);
  }
  if (e.connectionId !== undefined) {
    p = out.writeUInt16BE(ExtensionType.connectionId, p);
    p = out.writeUInt16BE(1 + e.connectionId.length, p);
    out[p++] = e.connectionId.length;
    p += out.write(e.connectionId, p, 'latin1');
  }
  if (e.ecPointFormats) {
    p = out.writeUInt16BE(ExtensionType.ecPointFormats, p);
    p = out.writeUInt16BE(2, p);
    out[p++] = 1;
    out[p++] = 0; // uncompressed
  }
  for (const [type, value] of [
    [ExtensionType.clientCertificateType, e.clientCertificateType],
    [ExtensionType.serverCertificateType, e.serverCertificateType],
  ] as const) {
    if (value === undefined) continue;
    p = out.writeUInt16BE(type, p);
    p = out.writeUInt16BE(1, p);
    out[p++] = value;
  }
  return out;
}

/** node-coap's server answering every request 2.04: the reference the benchmark compares with. */
import coap from 'coap';

const port = Number(process.argv[2] ?? 5683);
const server = coap.createServer((_req: unknown, res: { code: string; end(): void }) => {
  res.code = '2.04';
  res.end();
});
server.listen(port, '127.0.0.1');

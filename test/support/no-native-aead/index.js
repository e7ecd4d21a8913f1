throw new Error('node-aead-crypto is not used on Node >= 10');

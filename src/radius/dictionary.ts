/**
 * The RADIUS dictionaries: the codec library's RFC dictionaries plus the 3GPP vendor attributes (vendor 10415,
 * 3GPP TS 29.061) that a PGW/GGSN puts in accounting: 3GPP-IMSI, 3GPP-IMEISV and the others below, written in
 * the FreeRADIUS dictionary format the library reads.
 */
import radius from 'radius';

export const DICTIONARY_3GPP = `
VENDOR 3GPP 10415
BEGIN-VENDOR 3GPP
ATTRIBUTE 3GPP-IMSI 1 string
ATTRIBUTE 3GPP-Charging-ID 2 integer
ATTRIBUTE 3GPP-PDP-Type 3 integer
ATTRIBUTE 3GPP-Charging-Gateway-Address 4 ipaddr
ATTRIBUTE 3GPP-GPRS-Negotiated-QoS-profile 5 string
ATTRIBUTE 3GPP-SGSN-Address 6 ipaddr
ATTRIBUTE 3GPP-GGSN-Address 7 ipaddr
ATTRIBUTE 3GPP-IMSI-MCC-MNC 8 string
ATTRIBUTE 3GPP-GGSN-MCC-MNC 9 string
ATTRIBUTE 3GPP-NSAPI 10 string
ATTRIBUTE 3GPP-Selection-Mode 12 string
ATTRIBUTE 3GPP-Charging-Characteristics 13 string
ATTRIBUTE 3GPP-SGSN-MCC-MNC 18 string
ATTRIBUTE 3GPP-IMEISV 20 string
ATTRIBUTE 3GPP-RAT-Type 21 byte
ATTRIBUTE 3GPP-User-Location-Info 22 octets
ATTRIBUTE 3GPP-MS-Time-Zone 23 octets
END-VENDOR 3GPP
`;

interface DictionaryLoader {
  load_dictionaries(): void;
  _load_dictionary(content: string): string[];
}

let loaded = false;

/** Loads the dictionaries once (the library keeps them process-wide). */
export function loadDictionaries(): void {
  if (loaded) return;
  const lib = radius as unknown as DictionaryLoader;
  if (typeof lib._load_dictionary !== 'function')
    throw new Error('the radius package no longer reads dictionaries from text: pin radius@1.1.4');
  lib.load_dictionaries();
  lib._load_dictionary(DICTIONARY_3GPP);
  loaded = true;
}

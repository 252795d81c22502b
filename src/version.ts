/** ddiff's version; equal to package.json's (a unit test checks), kept here so a single executable carries it. */
export const VERSION = '0.1.0';

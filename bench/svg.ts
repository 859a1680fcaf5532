// The charts' SVG: text escaped for XML, and the document around the drawn parts (white background).
export const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function svgDocument(width: number, height: number, parts: readonly string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

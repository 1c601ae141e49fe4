package ocr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// tiffFrame is the size of one image (IFD) of a TIFF file.
type tiffFrame struct{ width, height int64 }

var errTIFF = errors.New("malformed TIFF directory")

// tiffFrames lists the frames of a classic TIFF file from its directories,
// without decoding any pixels, stopping after max+1 frames: tesseract reads
// every frame of a multi-page TIFF, so the page and pixel limits must see
// all of them, not only the first that image.DecodeConfig looks at.
func tiffFrames(path string, max int) ([]tiffFrame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open TIFF: %w", err)
	}
	defer f.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, errTIFF
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if hdr[0] == 'M' {
		bo = binary.BigEndian
	}
	off := int64(bo.Uint32(hdr[4:]))
	seen := map[int64]bool{}
	var frames []tiffFrame
	for off != 0 && len(frames) <= max {
		if seen[off] {
			return nil, errTIFF
		}
		seen[off] = true
		var n [2]byte
		if _, err := f.ReadAt(n[:], off); err != nil {
			return nil, errTIFF
		}
		count := int64(bo.Uint16(n[:]))
		entries := make([]byte, count*12+4)
		if _, err := f.ReadAt(entries, off+2); err != nil {
			return nil, errTIFF
		}
		var fr tiffFrame
		for i := int64(0); i < count; i++ {
			e := entries[i*12 : i*12+12]
			tag, typ := bo.Uint16(e[0:]), bo.Uint16(e[2:])
			var v int64
			switch typ {
			case 3: // SHORT
				v = int64(bo.Uint16(e[8:]))
			case 4: // LONG
				v = int64(bo.Uint32(e[8:]))
			default:
				continue
			}
			switch tag {
			case 256:
				fr.width = v
			case 257:
				fr.height = v
			}
		}
		if fr.width <= 0 || fr.height <= 0 {
			return nil, errTIFF
		}
		frames = append(frames, fr)
		off = int64(bo.Uint32(entries[count*12:]))
	}
	return frames, nil
}

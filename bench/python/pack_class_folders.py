"""Packs a class-folder dataset (FER-2013 as ../shared/data/fer2013 holds it)
into one blob of the original image files plus an index, so that it can travel
to another machine as two files. Nothing is decoded or changed.

Usage: python3 pack_class_folders.py DATA_DIR OUT_PREFIX [SPLIT ...]
  DATA_DIR: holds classes.txt ("INDEX NAME" per line) and one folder per split
            (train, val, ...) with one subfolder per class name.
Writes OUT_PREFIX.bin (the files' bytes, back to back) and OUT_PREFIX.tsv
(split, label index, offset, length, relative path), sorted by path.
Standard library only.
"""
import os
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root, prefix = sys.argv[1], sys.argv[2]
    splits = sys.argv[3:] or ["train", "val"]
    classes = {}
    with open(os.path.join(root, "classes.txt")) as f:
        for line in f:
            if line.strip():
                index, name = line.split()
                classes[name] = int(index)
    offset, rows = 0, []
    with open(prefix + ".bin", "wb") as blob:
        for split in splits:
            for name in sorted(classes):
                folder = os.path.join(root, split, name)
                for file in sorted(os.listdir(folder)):
                    with open(os.path.join(folder, file), "rb") as f:
                        data = f.read()
                    blob.write(data)
                    rows.append(f"{split}\t{classes[name]}\t{offset}\t{len(data)}\t{split}/{name}/{file}\n")
                    offset += len(data)
    with open(prefix + ".tsv", "w") as f:
        f.writelines(rows)
    print(f"{len(rows)} files, {offset} bytes -> {prefix}.bin, {prefix}.tsv")


if __name__ == "__main__":
    main()

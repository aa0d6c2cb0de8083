// Who the API says you are, for every page: {viewer: {userId, roles, anonymous}, error}.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const ViewerContext = createContext({ viewer: null, error: null });
export const useViewer = () => useContext(ViewerContext);
